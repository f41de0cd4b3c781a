//! The whole path on real (virtual) machines: two QEMU VMs (TCG, legacy BIOS,
//! virtio NIC and disk) behind two BMCs, one IPMI (OpenIPMI's `ipmi_sim`), one
//! Redfish (the lab's Redfish simulator), both really starting, stopping and
//! resetting their VM. The conductor, the REST API and ironic-boot-pxe's DHCP,
//! TFTP and HTTP servers run in a network namespace with the VMs' bridge. Both
//! nodes are enrolled through the API and taken through manage → provide
//! (cleaning) → deploy → undeploy (cleaning):
//!
//! power on over the BMC → network boot (iPXE) → the deploy ramdisk (Debian's
//! kernel, busybox and the static `ironic-agent`) looks itself up and heartbeats →
//! the image is streamed to the VM's disk → boot device disk → power off/on →
//! `active`; the disk holds the image and the VM boots it (its boot sector prints
//! a marker on the serial console); undeploy cleans the disk's metadata.
//!
//! Needs root, QEMU, iPXE's ROMs, OpenIPMI, busybox-static, cpio, curl and glibc's
//! static libraries (for the agent); `scripts/test.sh` installs them from
//! `test-deps/apt.txt`. A missing one fails the test with the package to install.

mod e2e_support;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e_support::api::Api;
use e2e_support::ipmi_bmc::{self, IpmiBmc};
use e2e_support::netns::{BRIDGE, LabNet, SERVER_IP};
use e2e_support::qemu::{QemuMachine, VmSpec};
use e2e_support::{image, need_file, ramdisk, tool};
use ironic_boot_pxe::{
    BootFiles, DhcpBind, DhcpConfig, DhcpMode, DhcpServer, HttpBootServer, ProvisioningDhcp,
    PxeConfig, Reservations, TftpOptions, TftpServer,
};
use ironic_core::conductor::{Conductor, ConductorConfig};
use ironic_core::store::SqliteStore;
use ironic_core::{InterfaceRegistry, Secret};
use ironic_standalone::api::{self, ApiSettings, ApiState};
use ironic_standalone::lab::RedfishSim;
use ironic_standalone::lab::model::{BootMode, BootSource, ServerSpec, SimServer};
use serde_json::{Value, json};

const API_PORT: u16 = 6385;
const BOOT_HTTP_PORT: u16 = 8080;
const IPMI_PORT: u16 = 623;
const DISK_SIZE: u64 = 64 << 20;
/// Whole-test bound on each provisioning wait (the test normally takes a few minutes).
const STATE_TIMEOUT: Duration = Duration::from_secs(240);

#[test]
fn qemu_vms_deploy_over_ipmi_and_redfish() {
    // Peers first, so that a missing one fails fast with its package name.
    tool("qemu-system-x86_64", "qemu-system-x86");
    need_file("/usr/lib/ipxe/qemu/efi-virtio.rom", "ipxe-qemu");
    need_file("/usr/lib/ipxe/undionly.kpxe", "ipxe");
    tool("ipmi_sim", "openipmi");
    tool("busybox", "busybox-static");
    tool("cpio", "cpio");
    tool("curl", "curl");
    tool("ip", "iproute2");

    let started = Instant::now();
    let kernel = ramdisk::kernel();
    let agent = ramdisk::static_agent();
    let work = tempfile::tempdir().unwrap();
    let initrd = ramdisk::initramfs(&kernel, &agent, work.path());
    eprintln!(
        "ramdisk ready after {:?} ({} MB initramfs)",
        started.elapsed(),
        std::fs::metadata(&initrd).unwrap().len() >> 20
    );

    let mut net = LabNet::new();
    let taps = [net.tap(), net.tap()];
    let dir = work.path().to_owned();
    let vmlinuz = kernel.join("vmlinuz");
    let result = net.run_inside(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(scenario(dir, vmlinuz, initrd, taps));
        // Dropping the runtime kills what is left (QEMU is `kill_on_drop`).
    });
    // Kills anything still in the namespace, then deletes it.
    drop(net);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    eprintln!("end-to-end test done in {:?}", started.elapsed());
}

/// One machine of the lab.
struct Vm {
    name: &'static str,
    mac: &'static str,
    server: SimServer,
    machine: QemuMachine,
    disk: PathBuf,
    marker: String,
    image_url: String,
    image_sha256: String,
    image: PathBuf,
}

async fn scenario(dir: PathBuf, vmlinuz: PathBuf, initrd: PathBuf, taps: [String; 2]) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| {
            "warn,ironic_core=info,ironic_deploy_agent=info,ironic_boot_pxe=info".into()
        }))
        .with_test_writer()
        .try_init();

    // --- boot files, DHCP, TFTP and HTTP on the bridge -----------------------
    let root = dir.join("boot");
    std::fs::create_dir_all(root.join("images")).unwrap();
    for nbp in ["undionly.kpxe", "snponly.efi"] {
        let src = Path::new("/usr/lib/ipxe").join(nbp);
        if src.is_file() {
            std::fs::copy(&src, root.join(nbp)).unwrap();
        }
    }
    let files = BootFiles::new(Some(&root)).unwrap();
    let reservations = Arc::new(Reservations::default());
    let _tftp = TftpServer::bind(
        SocketAddr::from((SERVER_IP, 69)),
        files.clone(),
        TftpOptions::default(),
    )
    .expect("TFTP server");
    let _dhcp = DhcpServer::bind(
        DhcpConfig::server(SERVER_IP),
        DhcpBind::interface(BRIDGE),
        reservations.clone(),
    )
    .expect("DHCP server");
    let _http = HttpBootServer::bind(
        SocketAddr::from((SERVER_IP, BOOT_HTTP_PORT)),
        ironic_boot_pxe::router(files.clone()),
    )
    .await
    .expect("HTTP boot server");
    let boot_url = format!("http://{SERVER_IP}:{BOOT_HTTP_PORT}");
    let api_url = format!("http://{SERVER_IP}:{API_PORT}");

    // --- the conductor with every driver crate, and the API --------------------
    let mut registry = InterfaceRegistry::with_noop();
    ironic_drivers_ipmi::register(&mut registry, ironic_drivers_ipmi::IpmiConfig::default());
    ironic_drivers_redfish::register(
        &mut registry,
        ironic_drivers_redfish::RedfishConfig::default(),
    );
    let mut pxe = PxeConfig::new(files.clone(), SERVER_IP, boot_url.clone());
    pxe.console = Some("ttyS0,115200n8".into());
    // TCG on a loaded host is too slow for the kernel's IO-APIC timer check
    // ("IO-APIC + timer doesn't work!" panic); real hardware never needs this.
    pxe.kernel_append_params.push_str(" no_timer_check");
    pxe.dhcp = Some(ProvisioningDhcp {
        reservations: reservations.clone(),
        mode: DhcpMode::Server,
        pool: (Ipv4Addr::new(10, 99, 0, 10), Ipv4Addr::new(10, 99, 0, 50)),
    });
    ironic_boot_pxe::register(&mut registry, pxe);
    let mut agent = ironic_deploy_agent::AgentConfig::default();
    // The ramdisk's /init exports this as the agent's RUST_LOG.
    agent.kernel_params.insert(
        "e2e-agent-log".into(),
        std::env::var("IRONIC_E2E_AGENT_LOG").unwrap_or_else(|_| "info".into()),
    );
    ironic_deploy_agent::register(&mut registry, agent);
    let store = SqliteStore::open(&dir.join("ironic.sqlite"))
        .await
        .expect("SQLite store");
    let conductor = Conductor::start(Arc::new(store), registry, {
        let mut v = ConductorConfig::default();
        v.host = "e2e-conductor".into();
        v.api_url = Some(api_url.clone());
        v
    })
    .await
    .expect("conductor");
    let settings = ApiSettings {
        ramdisk_heartbeat_timeout: 30,
        default_host: format!("{SERVER_IP}:{API_PORT}"),
        ..ApiSettings::default()
    };
    let state = ApiState::new(conductor.clone(), settings, None);
    let listener = tokio::net::TcpListener::bind((SERVER_IP, API_PORT))
        .await
        .expect("API listener");
    let api_task = tokio::spawn(async move {
        let _ = axum::serve(listener, api::router(state)).await;
    });

    // --- two machines and their BMCs -------------------------------------------
    let password = format!("pw-{}", std::process::id());
    let mk = |name: &'static str, mac: &'static str, tap: &str, seed: u64| {
        let disk = dir.join(format!("{name}.disk"));
        let f = std::fs::File::create(&disk).unwrap();
        f.set_len(DISK_SIZE).unwrap();
        let spec = ServerSpec {
            name: name.into(),
            uuid: uuid::Uuid::new_v4(),
            macs: vec![mac.parse().unwrap()],
            disk: disk.clone(),
            disk_size: DISK_SIZE,
            cpus: 1,
            memory_mib: 512,
            username: ipmi_bmc::USER.into(),
            password: Secret::new(password.clone()),
        };
        let server = SimServer::new(spec);
        // Both machines have legacy BIOS firmware (the instance image is MBR-booted).
        server.set_boot_override(None, None, Some(BootMode::Legacy));
        let machine = QemuMachine::spawn(
            server.clone(),
            VmSpec {
                name: name.into(),
                mac: mac.into(),
                tap: tap.into(),
                disk: disk.clone(),
                dir: dir.clone(),
                memory_mib: 512,
            },
        );
        let marker = format!("IRONIC-E2E-{name}-{:016x}", rand::random::<u64>());
        let image = root.join("images").join(format!("{name}.img"));
        let image_sha256 = image::write(&image, &marker, seed);
        Vm {
            name,
            mac,
            server,
            machine,
            disk,
            marker,
            image_url: format!("{boot_url}/images/{name}.img"),
            image_sha256,
            image,
        }
    };
    let vm_ipmi = mk("vm-ipmi", "52:54:00:e2:e0:01", &taps[0], 1);
    let vm_redfish = mk("vm-redfish", "52:54:00:e2:e0:02", &taps[1], 2);
    let ipmi = IpmiBmc::start(vm_ipmi.server.clone(), IPMI_PORT, &password, &dir).await;
    let redfish = RedfishSim::start(
        "127.0.0.1:0".parse().unwrap(),
        vec![vm_redfish.server.clone()],
    )
    .await
    .expect("Redfish simulator");

    let common = |vm: &Vm| {
        json!({
            "name": vm.name,
            "deploy_interface": "direct",
            "network_interface": "flat",
            "properties": {"capabilities": "boot_mode:bios", "cpu_arch": "x86_64"},
            "driver_info": {
                "deploy_kernel": vmlinuz.display().to_string(),
                "deploy_ramdisk": initrd.display().to_string(),
            },
        })
    };
    let mut ipmi_node = common(&vm_ipmi);
    ipmi_node["driver"] = json!("ipmi");
    ipmi_node["boot_interface"] = json!("pxe");
    merge(
        &mut ipmi_node["driver_info"],
        json!({
            "ipmi_address": "127.0.0.1",
            "ipmi_port": ipmi.port,
            "ipmi_username": ipmi_bmc::USER,
            "ipmi_password": password,
            "ipmi_cipher_suite": 3,
        }),
    );
    let mut redfish_node = common(&vm_redfish);
    redfish_node["driver"] = json!("redfish");
    redfish_node["boot_interface"] = json!("ipxe");
    merge(
        &mut redfish_node["driver_info"],
        json!({
            "redfish_address": redfish.url(),
            "redfish_system_id": format!("/redfish/v1/Systems/{}", vm_redfish.name),
            "redfish_username": ipmi_bmc::USER,
            "redfish_password": password,
        }),
    );

    let api = Api::new(&api_url, STATE_TIMEOUT);
    let t0 = Instant::now();
    let (r1, r2) = tokio::join!(
        lifecycle(&api, &vm_ipmi, ipmi_node, t0),
        lifecycle(&api, &vm_redfish, redfish_node, t0),
    );
    let report = |vm: &Vm| format!("{}\n{}", vm.machine.events(), vm.machine.consoles());
    if r1.is_err() || r2.is_err() {
        panic!(
            "end-to-end deploy failed:\n{}: {:?}\n{}: {:?}\n\n{}\n{}\nipmi_sim chassis_control calls:\n{}",
            vm_ipmi.name,
            r1,
            vm_redfish.name,
            r2,
            report(&vm_ipmi),
            report(&vm_redfish),
            ipmi.calls()
        );
    }
    eprintln!(
        "{}\n{}",
        vm_ipmi.machine.events(),
        vm_redfish.machine.events()
    );
    assert!(
        reservations.is_empty(),
        "the provisioning network still has DHCP reservations: {:?}",
        reservations.list()
    );

    vm_ipmi.machine.shutdown().await;
    vm_redfish.machine.shutdown().await;
    api_task.abort();
    conductor.shutdown().await;
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}

/// Enroll, manage, provide, deploy, check, undeploy one machine.
async fn lifecycle(api: &Api, vm: &Vm, body: Value, t0: Instant) -> Result<(), String> {
    let say = |what: &str| eprintln!("[{:>6.1}s {}] {what}", t0.elapsed().as_secs_f64(), vm.name);
    let node = api.post("/v1/nodes", body).await?;
    let uuid = node["uuid"].as_str().ok_or("no uuid")?.to_owned();
    api.post(
        "/v1/ports",
        json!({"node_uuid": uuid, "address": vm.mac, "pxe_enabled": true}),
    )
    .await?;
    say("enrolled through the API");

    api.provision(&uuid, json!({"target": "manage"})).await?;
    api.wait_state(&uuid, "manageable", vm.name).await?;
    say("manageable (power state read over the BMC)");

    // provide → automated cleaning: the ramdisk boots and erases the disk metadata
    api.provision(&uuid, json!({"target": "provide"})).await?;
    api.wait_state(&uuid, "available", vm.name).await?;
    say("available (cleaned by the agent)");
    let boots_before = vm.machine.boots().len();
    if boots_before == 0 {
        return Err("cleaning did not boot the machine".into());
    }

    api.patch(
        &uuid,
        json!([
            {"op": "add", "path": "/instance_info/image_source", "value": vm.image_url},
            {"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
            {"op": "add", "path": "/instance_info/image_os_hash_value", "value": vm.image_sha256},
            {"op": "add", "path": "/instance_info/image_disk_format", "value": "raw"},
        ]),
    )
    .await?;
    api.provision(&uuid, json!({"target": "active"})).await?;
    api.wait_state(&uuid, "active", vm.name).await?;
    say("active");

    // The disk holds the image ...
    let image = std::fs::read(&vm.image).map_err(|e| e.to_string())?;
    let disk = read_prefix(&vm.disk, image.len());
    if disk != image {
        let first_diff = disk.iter().zip(&image).position(|(a, b)| a != b);
        return Err(format!(
            "the disk does not hold the image (first difference at byte {first_diff:?})"
        ));
    }
    // ... and the machine booted it: network boot for the ramdisk, then the disk
    // (the BMC has powered it on; QEMU may still be starting).
    let boots = vm
        .machine
        .wait_disk_marker(&vm.marker, Duration::from_secs(60))
        .await?;
    if !boots[boots_before..]
        .iter()
        .any(|b| b.source == BootSource::Network)
    {
        return Err("the deploy did not network-boot the ramdisk".into());
    }
    say("the VM booted the deployed image from its disk (marker on the serial console)");
    let n = api.get(&format!("/v1/nodes/{uuid}")).await?;
    if n["power_state"] != "power on" {
        return Err(format!("active node's power_state is {}", n["power_state"]));
    }

    // Undeploy: power off, clean (the agent erases the disk metadata), available.
    api.provision(&uuid, json!({"target": "deleted"})).await?;
    api.wait_state(&uuid, "available", vm.name).await?;
    say("undeployed and cleaned");
    let disk = read_prefix(&vm.disk, 1 << 20);
    if disk.iter().any(|b| *b != 0) {
        return Err("cleaning left data in the disk's first MiB (the boot sector)".into());
    }
    // The BMC has powered it off; QEMU is told so right after.
    let deadline = Instant::now() + Duration::from_secs(15);
    while vm.machine.running() {
        if Instant::now() > deadline {
            return Err("the machine is still running after cleaning".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let n = api.get(&format!("/v1/nodes/{uuid}")).await?;
    if n["power_state"] != "power off"
        || !n["instance_info"].as_object().is_none_or(|m| m.is_empty())
    {
        return Err(format!(
            "after undeploy: power_state {}, instance_info {}",
            n["power_state"], n["instance_info"]
        ));
    }
    Ok(())
}

fn read_prefix(path: &Path, n: usize) -> Vec<u8> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    let mut f = std::fs::File::open(path).unwrap();
    f.read_exact(&mut buf).unwrap();
    buf
}
