//! Per-node virtual media ISOs (Ironic's `prepare_deploy_iso`) through a real
//! `ironic serve` and a real `sushy-emulator` (PyPI sushy-tools, fake driver):
//! a `redfish` node booting its ramdisk with `redfish-virtual-media` and no
//! prebuilt `redfish_deploy_iso` gets an ISO built for it from `[boot]
//! deploy_kernel`/`deploy_ramdisk`, served at `<boot url>/vmedia/boot-<uuid>.iso`;
//! the emulator downloads it on InsertMedia, and the ISO it holds (read back with
//! `isoinfo`) carries the node's network data (`openstack/latest/network_data.json`)
//! and its kernel parameters (`ipa-api-url`, `BOOTIF` of
//! its PXE port, the console) in GRUB's configuration and the kernel and ramdisk
//! byte for byte. Aborting the inspection ejects the media and removes the ISO.
//! A node whose kernel is on another server fails validation with the reason.
//!
//! `ramdisk_build.rs` boots ISOs made by the same code in QEMU (BIOS and UEFI).

mod api_support;
mod e2e_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use api_support::sushy::Sushy;
use api_support::{Ironic, call, rt};
use e2e_support::{need_file, tool};
use serde_json::json;

const SYSTEM: &str = "2cbd9e2a-0000-4000-8000-00000000b007";
const MAC: &str = "52:54:00:ab:cd:01";

/// Every file named `name` below `dir`.
fn find_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(find_named(&p, name));
            } else if p.file_name().is_some_and(|n| n == name) {
                out.push(p);
            }
        }
    }
    out
}

/// A file of an ISO, extracted by `isoinfo` (Rock Ridge names).
fn iso_file(iso: &Path, path: &str) -> Vec<u8> {
    let out = Command::new(tool("isoinfo", "genisoimage"))
        .args(["-R", "-i"])
        .arg(iso)
        .args(["-x", path])
        .output()
        .unwrap();
    assert!(out.status.success(), "isoinfo -x {path} failed");
    out.stdout
}

#[test]
fn redfish_virtual_media_inserts_an_iso_built_for_the_node() {
    tool("isoinfo", "genisoimage");
    tool("grub-mkimage", "grub-common");
    need_file("/usr/lib/grub/i386-pc/kernel.img", "grub-pc-bin");
    need_file("/usr/lib/grub/x86_64-efi/kernel.img", "grub-efi-amd64-bin");
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("sushy-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // The ISO builder copies the kernel and ramdisk; nothing boots here
    // (ramdisk_build.rs boots the same ISOs in QEMU).
    let kernel = dir.path().join("deploy.kernel");
    let ramdisk = dir.path().join("deploy.initramfs");
    let kernel_data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let ramdisk_data: Vec<u8> = (0..1_000_000u32).map(|i| (i * 13 % 241) as u8).collect();
    std::fs::write(&kernel, &kernel_data).unwrap();
    std::fs::write(&ramdisk, &ramdisk_data).unwrap();
    let bmc = Sushy::start(dir.path(), &tmp, SYSTEM, "vmedia-1", MAC);
    let ironic = Ironic::start(
        &[],
        &[
            ("IRONIC__BOOT__DEPLOY_KERNEL", kernel.to_str().unwrap()),
            ("IRONIC__BOOT__DEPLOY_RAMDISK", ramdisk.to_str().unwrap()),
            ("IRONIC__BOOT__CONSOLE", "ttyS0,115200n8"),
        ],
    );
    let api = ironic.url.clone();
    // A static address for the ramdisk (Metal3's preprovisioningNetworkData).
    let network_data = json!({
        "links": [{"id": "enp1s0", "type": "phy", "ethernet_mac_address": MAC}],
        "networks": [{"id": "prov", "type": "ipv4", "link": "enp1s0",
                      "ip_address": "192.0.2.50", "netmask": "255.255.255.0",
                      "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.0.2.1"}]}],
        "services": [{"type": "dns", "address": "192.0.2.1"}],
    });
    let rt = rt();
    rt.block_on(async {
        let (s, node) = call(
            &api,
            reqwest::Method::POST,
            "/v1/nodes",
            Some(json!({
                "name": "vmedia-1",
                "driver": "redfish",
                "boot_interface": "redfish-virtual-media",
                "inspect_interface": "agent",
                "network_data": network_data,
                "driver_info": {
                    "redfish_address": bmc.url,
                    "redfish_system_id": format!("/redfish/v1/Systems/{SYSTEM}"),
                },
            })),
        )
        .await;
        assert_eq!(s, 201, "{node}");
        let uuid = node["uuid"].as_str().unwrap().to_owned();
        let (s, port) = call(
            &api,
            reqwest::Method::POST,
            "/v1/ports",
            Some(json!({"node_uuid": uuid, "address": MAC, "pxe_enabled": true})),
        )
        .await;
        assert_eq!(s, 201, "{port}");
        let (s, v) = call(&api, reqwest::Method::GET, &format!("/v1/nodes/{uuid}/validate"), None).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["boot"]["result"], true, "{v}");

        let wait_state = |want: &'static str| {
            let api = api.clone();
            let uuid = uuid.clone();
            async move {
                let deadline = Instant::now() + Duration::from_secs(120);
                loop {
                    let (_, n) = call(&api, reqwest::Method::GET, &format!("/v1/nodes/{uuid}"), None).await;
                    if n["provision_state"] == want {
                        return n;
                    }
                    let failed = n["provision_state"]
                        .as_str()
                        .is_some_and(|s| s.ends_with("failed"));
                    assert!(
                        Instant::now() < deadline && !failed,
                        "node never reached {want}: {n}"
                    );
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        };
        let target = |t: &'static str| {
            let api = api.clone();
            let uuid = uuid.clone();
            async move {
                let (s, b) = call(
                    &api,
                    reqwest::Method::PUT,
                    &format!("/v1/nodes/{uuid}/states/provision"),
                    Some(json!({"target": t})),
                )
                .await;
                assert_eq!(s, 202, "{t}: {b}");
            }
        };
        target("manage").await;
        wait_state("manageable").await;
        target("inspect").await;
        let n = wait_state("inspect wait").await;
        let vmedia = &n["driver_internal_info"]["redfish_vmedia"];
        let iso_url = format!("{api}/boot/vmedia/boot-{uuid}.iso");
        assert_eq!(vmedia["image"], iso_url.as_str(), "{n}");
        assert_eq!(vmedia["built"], true, "{n}");

        // The ISO the emulator downloaded on InsertMedia.
        let name = format!("boot-{uuid}.iso");
        let fetched = find_named(&tmp, &name);
        assert_eq!(fetched.len(), 1, "sushy-emulator holds {fetched:?}; its log:\n{}", std::fs::read_to_string(&bmc.log).unwrap_or_default());
        let iso = &fetched[0];
        let cfg = String::from_utf8(iso_file(iso, "/boot/grub/grub.cfg")).unwrap();
        let linux = cfg
            .lines()
            .find(|l| l.trim_start().starts_with("linux "))
            .unwrap_or_else(|| panic!("no linux line:\n{cfg}"));
        for want in [
            format!("'ipa-api-url={api}'"),
            "'BOOTIF=01-52-54-00-ab-cd-01'".to_owned(),
            "'console=ttyS0,115200n8'".to_owned(),
            "'nofb'".to_owned(),
        ] {
            assert!(linux.contains(&want), "{want} missing from {linux}");
        }
        assert!(!cfg.contains("ipa-agent-token"), "{cfg}");
        // The node's network data, where Ironic puts it, also handed to the
        // ramdisk by GRUB.
        let nd: serde_json::Value =
            serde_json::from_slice(&iso_file(iso, "/openstack/latest/network_data.json")).unwrap();
        assert_eq!(nd, network_data);
        assert!(
            cfg.contains("initrd /ironic-agent.initramfs /ironic-node.cpio\n"),
            "{cfg}"
        );
        let cpio = iso_file(iso, "/ironic-node.cpio");
        let json = serde_json::to_vec_pretty(&network_data).unwrap();
        assert!(
            cpio.windows(json.len()).any(|w| w == json.as_slice()),
            "ironic-node.cpio does not hold network_data.json"
        );
        assert_eq!(iso_file(iso, "/ironic-agent.kernel"), kernel_data);
        assert_eq!(iso_file(iso, "/ironic-agent.initramfs"), ramdisk_data);
        // Bootable: El Torito (isoinfo lists the default, BIOS entry; the UEFI
        // entry's ESP is on the ISO).
        let d = Command::new(tool("isoinfo", "genisoimage"))
            .args(["-d", "-i"])
            .arg(iso)
            .output()
            .unwrap();
        let d = String::from_utf8_lossy(&d.stdout).into_owned();
        assert!(
            d.contains("El Torito VD version 1 found") && d.contains("No Emulation Boot"),
            "{d}"
        );
        assert!(!iso_file(iso, "/boot/efiboot.img").is_empty());
        // Served as the emulator got it.
        let served = reqwest::get(&iso_url).await.unwrap();
        assert_eq!(served.status().as_u16(), 200);
        assert_eq!(served.bytes().await.unwrap().as_ref(), std::fs::read(iso).unwrap().as_slice());
        let (_, cd) = call(&bmc.url, reqwest::Method::GET, &format!("/redfish/v1/Systems/{SYSTEM}/VirtualMedia/Cd"), None).await;
        assert_eq!(cd["Inserted"], true, "{cd}");

        // Abort: the media is ejected and the ISO is gone.
        target("abort").await;
        wait_state("inspect failed").await;
        let (_, cd) = call(&bmc.url, reqwest::Method::GET, &format!("/redfish/v1/Systems/{SYSTEM}/VirtualMedia/Cd"), None).await;
        assert_eq!(cd["Inserted"], false, "{cd}");
        assert_eq!(reqwest::get(&iso_url).await.unwrap().status().as_u16(), 404);
        assert!(
            find_named(&ironic.dir.path().join("data"), &name).is_empty(),
            "the ISO file is removed"
        );

        // A kernel on another server cannot go into an ISO: validation says so.
        let (s, _) = call(
            &api,
            reqwest::Method::PATCH,
            &format!("/v1/nodes/{uuid}"),
            Some(json!([{"op": "add", "path": "/driver_info/deploy_kernel", "value": "http://192.0.2.1/k"}])),
        )
        .await;
        assert_eq!(s, 200);
        let (_, v) = call(&api, reqwest::Method::GET, &format!("/v1/nodes/{uuid}/validate"), None).await;
        assert_eq!(v["boot"]["result"], false, "{v}");
        let reason = v["boot"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("deploy_kernel") && reason.contains("http://192.0.2.1/k"), "{reason}");
    });
}

/// Rescue over virtual media (item 3's "same for the rescue ramdisk"): an
/// adopted node rescued with the `agent` rescue interface and
/// `redfish-virtual-media` gets an ISO built from its `rescue_kernel` and
/// `rescue_ramdisk` (not the deploy ones), inserted by the BMC; the rescue
/// password is not in it; aborting the wait ejects it and removes the file.
#[test]
fn rescue_inserts_an_iso_built_from_the_rescue_ramdisk() {
    tool("isoinfo", "genisoimage");
    tool("grub-mkimage", "grub-common");
    need_file("/usr/lib/grub/i386-pc/kernel.img", "grub-pc-bin");
    need_file("/usr/lib/grub/x86_64-efi/kernel.img", "grub-efi-amd64-bin");
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("sushy-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let file = |name: &str, len: u32, k: u32| {
        let p = dir.path().join(name);
        let data: Vec<u8> = (0..len).map(|i| (i * k % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        (p, data)
    };
    let (deploy_kernel, _) = file("deploy.kernel", 200_000, 7);
    let (deploy_ramdisk, _) = file("deploy.initramfs", 300_000, 13);
    let (rescue_kernel, rescue_kernel_data) = file("rescue.kernel", 210_000, 3);
    let (rescue_ramdisk, rescue_ramdisk_data) = file("rescue.initramfs", 310_000, 5);
    let bmc = Sushy::start(dir.path(), &tmp, SYSTEM, "rescue-1", MAC);
    let ironic = Ironic::start(
        &[],
        &[
            (
                "IRONIC__BOOT__DEPLOY_KERNEL",
                deploy_kernel.to_str().unwrap(),
            ),
            (
                "IRONIC__BOOT__DEPLOY_RAMDISK",
                deploy_ramdisk.to_str().unwrap(),
            ),
        ],
    );
    let api = ironic.url.clone();
    rt().block_on(async {
        let (s, node) = call(
            &api,
            reqwest::Method::POST,
            "/v1/nodes",
            Some(json!({
                "name": "rescue-1",
                "driver": "redfish",
                "boot_interface": "redfish-virtual-media",
                "rescue_interface": "agent",
                "driver_info": {
                    "redfish_address": bmc.url,
                    "redfish_system_id": format!("/redfish/v1/Systems/{SYSTEM}"),
                    "rescue_kernel": rescue_kernel.to_str().unwrap(),
                    "rescue_ramdisk": rescue_ramdisk.to_str().unwrap(),
                },
                "instance_info": {
                    "image_source": "http://127.0.0.1:9/image.raw",
                    "image_checksum": format!("sha256:{}", "0".repeat(64)),
                },
            })),
        )
        .await;
        assert_eq!(s, 201, "{node}");
        let uuid = node["uuid"].as_str().unwrap().to_owned();
        let (s, port) = call(
            &api,
            reqwest::Method::POST,
            "/v1/ports",
            Some(json!({"node_uuid": uuid, "address": MAC, "pxe_enabled": true})),
        )
        .await;
        assert_eq!(s, 201, "{port}");
        let state = |want: &'static str| {
            let api = api.clone();
            let uuid = uuid.clone();
            async move {
                let deadline = Instant::now() + Duration::from_secs(120);
                loop {
                    let (_, n) = call(
                        &api,
                        reqwest::Method::GET,
                        &format!("/v1/nodes/{uuid}"),
                        None,
                    )
                    .await;
                    if n["provision_state"] == want {
                        return n;
                    }
                    assert!(Instant::now() < deadline, "node never reached {want}: {n}");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        };
        let target = |body: serde_json::Value| {
            let api = api.clone();
            let uuid = uuid.clone();
            async move {
                let (s, b) = call(
                    &api,
                    reqwest::Method::PUT,
                    &format!("/v1/nodes/{uuid}/states/provision"),
                    Some(body.clone()),
                )
                .await;
                assert_eq!(s, 202, "{body}: {b}");
            }
        };
        target(json!({"target": "manage"})).await;
        state("manageable").await;
        target(json!({"target": "adopt"})).await;
        state("active").await;
        target(json!({"target": "rescue", "rescue_password": "pw-rescue"})).await;
        let n = state("rescue wait").await;
        let vmedia = &n["driver_internal_info"]["redfish_vmedia"];
        let iso_url = format!("{api}/boot/vmedia/boot-{uuid}.iso");
        assert_eq!(vmedia["image"], iso_url.as_str(), "{n}");
        let name = format!("boot-{uuid}.iso");
        let fetched = find_named(&tmp, &name);
        assert_eq!(fetched.len(), 1, "sushy-emulator holds {fetched:?}");
        let iso = &fetched[0];
        assert_eq!(iso_file(iso, "/ironic-agent.kernel"), rescue_kernel_data);
        assert_eq!(
            iso_file(iso, "/ironic-agent.initramfs"),
            rescue_ramdisk_data
        );
        let cfg = String::from_utf8(iso_file(iso, "/boot/grub/grub.cfg")).unwrap();
        assert!(cfg.contains(&format!("'ipa-api-url={api}'")), "{cfg}");
        assert!(
            !cfg.contains("pw-rescue"),
            "the rescue password is in the ISO: {cfg}"
        );
        let cd_url = format!("/redfish/v1/Systems/{SYSTEM}/VirtualMedia/Cd");
        let (_, cd) = call(&bmc.url, reqwest::Method::GET, &cd_url, None).await;
        assert_eq!(cd["Inserted"], true, "{cd}");

        target(json!({"target": "abort"})).await;
        state("rescue failed").await;
        let (_, cd) = call(&bmc.url, reqwest::Method::GET, &cd_url, None).await;
        assert_eq!(cd["Inserted"], false, "{cd}");
        assert_eq!(reqwest::get(&iso_url).await.unwrap().status().as_u16(), 404);
        let (_, n) = call(
            &api,
            reqwest::Method::GET,
            &format!("/v1/nodes/{uuid}"),
            None,
        )
        .await;
        assert!(
            n["instance_info"].get("rescue_password").is_none(),
            "the rescue password is removed: {n}"
        );
    });
}
