//! Software RAID as IPA builds it, on a real Linux kernel: `ironic-agent` runs
//! in a QEMU VM (Debian's kernel with its md modules, a busybox initramfs, the
//! host's `mdadm`) with two virtio disks, and is driven through its command API
//! (IPA's `clean.execute_clean_step`, `standby.prepare_image`, ...) over QEMU's
//! user network:
//!
//! 1. `create_configuration` builds a RAID-1 root volume and a RAID-0 `MAX`
//!    volume over both disks (GPT, room for the ESP, `mdadm --create`); the
//!    kernel's `/proc/mdstat` (from `log.collect_system_logs`) shows both arrays;
//! 2. a whole-disk image goes to the RAID-1 volume (`/dev/md0`, picked as the
//!    root device): after power-off both disk files hold the image at the
//!    array's data offset (a real mirror);
//!    `install_bootloader` (UEFI) puts an ESP on each disk, mirrored (RAID-1,
//!    metadata 1.0) with the image's ESP content, and the disks boot in OVMF
//!    into the image's GRUB, together and each one alone;
//! 3. a second ramdisk boot assembles the arrays again and
//!    `delete_configuration` removes them: no array, no superblock, no
//!    partition table left.
//!
//! In legacy BIOS mode (msdos and GPT holders), `install_bootloader` puts
//! GRUB (from the ramdisk) on both holder disks and SeaBIOS boots the disks
//! together and each one alone to the image's `grub.cfg`.
//!
//! Needs root, `qemu-system-x86`,
//! `busybox-static`, `cpio`, `mdadm`, `parted`, `fdisk` (sfdisk), `ovmf`,
//! `dosfstools`, `mtools`, `grub-efi-amd64-bin`, `grub-pc-bin`, `e2fsprogs`,
//! and Debian's kernel
//! package (fetched with `apt-get download` into `target/e2e-kernel`, shared
//! with the ironic-standalone QEMU test).

mod common;

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::vm::{
    BIOS_MARKER, ROOTFS_UUID, agent_initramfs as initramfs, bios_image, boot_disks, boot_uefi,
    free_port, kernel, md_superblock, need, partitions, run,
};
use ironic_deploy_agent::httpd::{ImageServer, ServeOptions};
use serde_json::{Value, json};

const GIB: u64 = 1 << 30;
/// The pre-generated agent token (`ipa-agent-token`, as Ironic passes it with
/// virtual media).
const TOKEN: &str = "raidtestraidtestraidtestraidtestraidtest42";
const MIB: u64 = 1 << 20;
/// What the image's grub.cfg prints when the disks boot.
const MARKER: &str = "ironic-rs-raid-esp-boots";

struct Vm {
    child: Child,
    console: PathBuf,
    port: u16,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Boot the ramdisk with `disks` as virtio disks.
fn boot_ramdisk(kernel: &Path, initrd: &Path, disks: &[PathBuf], dir: &Path, n: u32) -> Vm {
    let port = free_port();
    let console = dir.join(format!("console-{n}.log"));
    let mut cmd = Command::new(need("qemu-system-x86_64", "qemu-system-x86"));
    cmd.args([
        "-accel", "tcg", "-machine", "pc", "-cpu", "max", "-m", "768", "-smp", "1",
    ])
    .args(["-display", "none", "-no-reboot", "-nodefaults"])
    .arg("-kernel")
    .arg(kernel.join("vmlinuz"))
    .arg("-initrd")
    .arg(initrd)
    .arg("-append")
    .arg(format!(
        "console=ttyS0 panic=-1 no_timer_check ipa-agent-token={TOKEN} ipa-enable-auto-tls=0"
    ))
    .arg("-serial")
    .arg(format!("file:{}", console.display()))
    .arg("-netdev")
    .arg(format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:9999"))
    .args(["-device", "virtio-net-pci,netdev=n0"]);
    for d in disks {
        cmd.arg("-drive")
            .arg(format!("file={},format=raw,if=virtio", d.display()));
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("qemu-system-x86_64 is needed: apt-get install qemu-system-x86");
    Vm {
        child,
        console,
        port,
    }
}

impl Vm {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn console(&self) -> String {
        std::fs::read_to_string(&self.console).unwrap_or_default()
    }

    async fn wait_api(&self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline {
            if let Ok(r) = http
                .get(format!("{}/v1/commands/?agent_token={TOKEN}", self.url()))
                .send()
                .await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        panic!(
            "the agent in the VM did not answer within 300 s; console:\n{}",
            self.console()
        );
    }

    /// Run a command to its end (`?wait=true`); its result.
    async fn command(&self, http: &reqwest::Client, name: &str, params: Value) -> Value {
        let r = http
            .post(format!(
                "{}/v1/commands/?wait=true&agent_token={TOKEN}",
                self.url()
            ))
            .json(&json!({"name": name, "params": params}))
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}\nconsole:\n{}", self.console()));
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{name}: {status} {body}");
        body
    }

    async fn ok(&self, http: &reqwest::Client, name: &str, params: Value) -> Value {
        let r = self.command(http, name, params).await;
        assert_eq!(
            r["command_status"],
            "SUCCEEDED",
            "{name}: {r}\nconsole:\n{}",
            self.console()
        );
        r["command_result"].clone()
    }

    /// `standby.power_off` (the machine may go before it answers, as with
    /// Ironic), then wait for QEMU to exit.
    async fn power_off(self, http: &reqwest::Client) {
        let _ = http
            .post(format!("{}/v1/commands/?agent_token={TOKEN}", self.url()))
            .json(&json!({"name": "standby.power_off", "params": {}}))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        self.wait_off();
    }

    /// Wait for the VM to power off.
    fn wait_off(mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("the VM did not power off; console:\n{}", self.console());
    }
}

/// The `/proc/mdstat` the agent collected with its logs.
async fn mdstat(vm: &Vm, http: &reqwest::Client) -> String {
    use base64::Engine as _;
    let logs = vm.ok(http, "log.collect_system_logs", json!({})).await;
    let gz = base64::engine::general_purpose::STANDARD
        .decode(logs["system_logs"].as_str().unwrap())
        .unwrap();
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut tar)
        .unwrap();
    let mut off = 0;
    while off + 512 <= tar.len() && tar[off] != 0 {
        let name = String::from_utf8_lossy(&tar[off..off + 100])
            .trim_end_matches('\0')
            .to_owned();
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&tar[off + 124..off + 135])
                .trim_matches(|c| c == '\0' || c == ' '),
            8,
        )
        .unwrap();
        if name == "mdstat" {
            return String::from_utf8_lossy(&tar[off + 512..off + 512 + size]).into_owned();
        }
        off += 512 + size.div_ceil(512) * 512;
    }
    panic!("the logs have no mdstat (md modules not loaded?)")
}

/// A 48 MiB whole-disk GPT image: an ESP and a data partition with a marker.
fn whole_disk_image(dir: &Path) -> Vec<u8> {
    let img = dir.join("image.raw");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(48 * MIB).unwrap();
    drop(f);
    let mut c = Command::new("sfdisk")
        .args(["-q", img.to_str().unwrap()])
        .stdin(Stdio::piped())
        .spawn()
        .expect("sfdisk is needed: apt-get install fdisk");
    std::io::Write::write_all(
        &mut c.stdin.take().unwrap(),
        b"label: gpt\nstart=2048, size=40960, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=43008, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n",
    )
    .unwrap();
    assert!(c.wait().unwrap().success());
    // the ESP: GRUB (from the host's grub-mkimage) reading its grub.cfg from it
    let esp = dir.join("esp.fat");
    std::fs::File::create(&esp)
        .unwrap()
        .set_len(20 * MIB)
        .unwrap();
    run(
        Command::new(need("mkfs.vfat", "dosfstools"))
            .args(["-n", "EFI", "-i", "1234ABCD"])
            .arg(&esp),
        "mkfs.vfat",
    );
    let grub = dir.join("BOOTX64.EFI");
    run(
        Command::new(need("grub-mkimage", "grub-common grub-efi-amd64-bin"))
            .args(["-O", "x86_64-efi", "-p", "/EFI/BOOT", "-o"])
            .arg(&grub)
            .args([
                "normal", "fat", "part_gpt", "echo", "serial", "terminal", "halt", "sleep",
            ]),
        "grub-mkimage",
    );
    std::fs::write(
        dir.join("grub.cfg"),
        format!(
            "serial --unit=0 --speed=115200\nterminal_output serial\necho {MARKER}\nsleep 1\nhalt\n"
        ),
    )
    .unwrap();
    let esp_s = esp.to_str().unwrap();
    run(
        Command::new(need("mmd", "mtools")).args(["-i", esp_s, "::/EFI", "::/EFI/BOOT"]),
        "mmd",
    );
    for (src, dst) in [
        ("BOOTX64.EFI", "::/EFI/BOOT/BOOTX64.EFI"),
        ("grub.cfg", "::/EFI/BOOT/grub.cfg"),
    ] {
        run(
            Command::new("mcopy")
                .args(["-i", esp_s])
                .arg(dir.join(src))
                .arg(dst),
            "mcopy",
        );
    }
    let mut data = std::fs::read(&img).unwrap();
    let fat = std::fs::read(&esp).unwrap();
    data[MIB as usize..MIB as usize + fat.len()].copy_from_slice(&fat);
    // recognisable bytes all over the data partition
    for (i, chunk) in data[43008 * 512..].chunks_mut(4096).enumerate() {
        let s = format!("ironic-rs software RAID test block {i:08}\n");
        chunk[..s.len()].copy_from_slice(s.as_bytes());
    }
    data
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn software_raid_in_a_vm() {
    need("qemu-system-x86_64", "qemu-system-x86");
    need("mdadm", "mdadm");
    need("sfdisk", "fdisk");
    let kernel = kernel();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_owned();
    let initrd = initramfs(&kernel, &dir);
    let disks: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("disk{i}.raw"))).collect();
    for d in &disks {
        std::fs::File::create(d).unwrap().set_len(2 * GIB).unwrap();
    }
    let image = whole_disk_image(&dir);
    std::fs::write(dir.join("image.raw"), &image).unwrap();
    let srv = ImageServer::start(&dir, ServeOptions::new()).await.unwrap();
    let image_url = srv
        .url("image.raw")
        .replace("127.0.0.1", "10.0.2.2")
        .replace("localhost", "10.0.2.2");
    let http = reqwest::Client::new();

    // 1. cleaning: create_configuration, as Ironic's agent RAID interface sends it
    let config = json!({"logical_disks": [
        {"size_gb": 1, "raid_level": "1", "controller": "software", "is_root_volume": true,
         "volume_name": "root"},
        {"size_gb": "MAX", "raid_level": "0", "controller": "software", "volume_name": "data"}
    ]});
    let node = json!({"uuid": "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", "properties":
        {"capabilities": "boot_mode:uefi"}, "instance_info": {}, "driver_internal_info": {},
        "target_raid_config": config});
    let vm = boot_ramdisk(&kernel, &initrd, &disks, &dir, 1);
    vm.wait_api(&http).await;
    let step = |name: &str| {
        json!({"step": {"step": name, "interface": "raid", "priority": 0, "args": {},
            "abortable": true, "reboot_requested": false}, "node": node, "ports": [],
            "clean_version": null})
    };
    // an invalid configuration is refused before any disk is touched
    let mut bad = node.clone();
    bad["target_raid_config"]["logical_disks"][0]["raid_level"] = json!("0");
    let r = vm
        .command(
            &http,
            "clean.execute_clean_step",
            json!({"step": {"step": "create_configuration", "interface": "raid", "args": {}},
                "node": bad, "ports": []}),
        )
        .await;
    assert_eq!(r["command_status"], "FAILED", "{r}");
    assert!(
        r["command_error"]
            .to_string()
            .contains("requires RAID-1 for the first logical disk"),
        "{r}"
    );
    assert!(partitions(&disks[0]).is_empty(), "nothing was written");

    let r = vm
        .ok(
            &http,
            "clean.execute_clean_step",
            step("create_configuration"),
        )
        .await;
    assert_eq!(
        r["clean_result"], config,
        "IPA returns the configuration it built"
    );
    let stat = mdstat(&vm, &http).await;
    assert!(
        stat.contains("md0 : active raid1 vdb1[1] vda1[0]")
            || stat.contains("md0 : active raid1 vda1[0] vdb1[1]"),
        "{stat}"
    );
    assert!(stat.contains("md1 : active raid0"), "{stat}");
    // running it again refuses: the arrays exist (IPA's "should not" error)
    let r = vm
        .command(
            &http,
            "clean.execute_clean_step",
            step("create_configuration"),
        )
        .await;
    assert_eq!(r["command_status"], "FAILED", "{r}");

    // 2. deployment: the image goes to the RAID-1 root volume
    let info = json!({"id": "raid-image", "urls": [image_url], "disk_format": "raw",
        "os_hash_algo": "sha256", "os_hash_value": sha256_hex(&image)});
    let msg = vm
        .ok(
            &http,
            "standby.prepare_image",
            json!({"image_info": info, "configdrive": null}),
        )
        .await;
    assert!(
        msg["result"]
            .as_str()
            .unwrap()
            .contains("written to device /dev/md0"),
        "{msg}"
    );
    let uuids = vm.ok(&http, "standby.get_partition_uuids", json!({})).await;
    // Ironic's configure_local_boot in UEFI mode: the ESP mirrored on both disks
    let r = vm
        .ok(
            &http,
            "image.install_bootloader",
            json!({"root_uuid": uuids["root uuid"], "efi_system_part_uuid": null,
                "target_boot_mode": "uefi"}),
        )
        .await;
    let msg = r["result"].as_str().unwrap();
    assert!(
        msg.contains("mirrored to /dev/md2 on /dev/vda3, /dev/vdb3"),
        "{msg}"
    );
    assert!(msg.contains("\\EFI\\BOOT\\BOOTX64.EFI"), "{msg}");
    assert!(
        msg.contains("not booted in UEFI mode"),
        "NVRAM skipped and said: {msg}"
    );
    vm.power_off(&http).await;

    // both disks: GPT, the RAID partitions after room for the ESP, the image
    // mirrored at the array's data offset
    for d in &disks {
        let parts = partitions(d);
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert_eq!(parts[0].0, 551 * MIB, "room for the ESP first: {parts:?}");
        assert_eq!(
            parts[0].0 + parts[0].1,
            GIB,
            "the first volume ends at 1 GiB"
        );
        assert_eq!(parts[1].0, GIB);
        for p in &parts[..2] {
            assert_eq!(
                p.2, "A19D880F-05FC-4D3B-A006-743F0F84911E",
                "Linux RAID type"
            );
        }
        let f = std::fs::File::open(d).unwrap();
        let (data_offset, name) = md_superblock(&f, parts[0].0 + 4096)
            .unwrap_or_else(|| panic!("no md 1.2 superblock on {}", d.display()));
        assert!(name.ends_with("root"), "{name}");
        let mut got = vec![0u8; image.len()];
        f.read_exact_at(&mut got, parts[0].0 + data_offset).unwrap();
        // the data partition byte for byte (the GPT headers were moved to the
        // end of the volume by the agent, as IPA's sgdisk -e)
        assert_eq!(&got[512..520], b"EFI PART");
        let body = 21 * MIB as usize..image.len() - 64 * 1024;
        assert!(
            got[body.clone()] == image[body],
            "{} does not hold the image",
            d.display()
        );
        let (_, name) = md_superblock(&f, parts[1].0 + 4096).unwrap();
        assert!(name.ends_with("data"), "{name}");
        // the image's own ESP inside the volume is wiped
        assert!(
            got[MIB as usize..MIB as usize + 512]
                .iter()
                .all(|b| *b == 0)
        );
        // the ESP: 550 MiB from 1 MiB, a member of a metadata-1.0 mirror (the
        // superblock 8 KiB before its end), a plain FAT to the firmware with
        // the image's volume id
        let esp = &parts[2];
        assert_eq!((esp.0, esp.1), (MIB, 550 * MIB), "{parts:?}");
        assert_eq!(esp.2, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        let sectors = esp.1 / 512;
        let (_, name) = md_superblock(&f, esp.0 + ((sectors - 16) & !7) * 512)
            .expect("md 1.0 superblock at the end of the ESP");
        assert!(name.ends_with("esp"), "{name}");
        let mut fat = vec![0u8; 512];
        f.read_exact_at(&mut fat, esp.0).unwrap();
        assert_eq!(&fat[510..512], &[0x55, 0xAA]);
        let id_at = if &fat[82..87] == b"FAT32" { 67 } else { 39 };
        assert_eq!(
            u32::from_le_bytes(fat[id_at..id_at + 4].try_into().unwrap()),
            0x1234_ABCD,
            "the copied ESP keeps the image's volume id"
        );
    }
    // the disks boot in OVMF into the image's GRUB, both, and either alone
    boot_uefi(&disks, &dir, MARKER);
    boot_uefi(&disks[1..], &dir, MARKER);

    // 3. cleaning again in a fresh ramdisk: delete_configuration
    let vm = boot_ramdisk(&kernel, &initrd, &disks, &dir, 2);
    vm.wait_api(&http).await;
    let r = vm
        .ok(
            &http,
            "clean.execute_clean_step",
            step("delete_configuration"),
        )
        .await;
    // a fresh ramdisk assembles the arrays under its own names (md127, ...)
    let deleted = r["clean_result"].as_object().unwrap();
    assert_eq!(deleted.len(), 3, "root, data and the ESP mirror: {r}");
    assert!(deleted.values().all(|v| v == "delete"), "{r}");
    let stat = mdstat(&vm, &http).await;
    assert!(!stat.contains(" : active"), "{stat}");
    vm.power_off(&http).await;
    for d in &disks {
        assert!(
            partitions(d).is_empty(),
            "{} still has partitions",
            d.display()
        );
        let f = std::fs::File::open(d).unwrap();
        assert!(md_superblock(&f, 551 * MIB + 4096).is_none());
        assert!(md_superblock(&f, GIB + 4096).is_none());
    }
}

/// Software RAID in legacy BIOS mode with `disk_label` holders (`msdos`,
/// Ironic's default in BIOS, or `gpt`): create_configuration, a whole-disk
/// image onto the RAID-1 root, install_bootloader (GRUB on every holder), then
/// SeaBIOS boots the disks together and each one alone to the image's
/// grub.cfg. `rootfs_uuid`: the root UUID sent as Ironic does with the
/// image's `rootfs_uuid` (else its fallback, the agent's reported disk id).
async fn bios_raid(disk_label: &str, rootfs_uuid: bool) {
    need("qemu-system-x86_64", "qemu-system-x86");
    need("mdadm", "mdadm");
    need("sfdisk", "fdisk");
    let kernel = kernel();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_owned();
    let initrd = initramfs(&kernel, &dir);
    let disks: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("disk{i}.raw"))).collect();
    for d in &disks {
        std::fs::File::create(d).unwrap().set_len(2 * GIB).unwrap();
    }
    let image = bios_image(&dir);
    std::fs::write(dir.join("image.raw"), &image).unwrap();
    let srv = ImageServer::start(&dir, ServeOptions::new()).await.unwrap();
    let image_url = srv
        .url("image.raw")
        .replace("127.0.0.1", "10.0.2.2")
        .replace("localhost", "10.0.2.2");
    let http = reqwest::Client::new();

    let config = json!({"logical_disks": [
        {"size_gb": 1, "raid_level": "1", "controller": "software", "is_root_volume": true,
         "volume_name": "root"}
    ]});
    let node = json!({"uuid": "7c1d5a2e-4f3b-4c8d-9e6a-b2f1c3d4e5f6", "properties":
        {"capabilities": format!("boot_mode:bios,disk_label:{disk_label}")},
        "instance_info": {}, "driver_internal_info": {}, "target_raid_config": config});
    let vm = boot_ramdisk(&kernel, &initrd, &disks, &dir, 1);
    vm.wait_api(&http).await;
    let r = vm
        .ok(
            &http,
            "clean.execute_clean_step",
            json!({"step": {"step": "create_configuration", "interface": "raid",
                "priority": 0, "args": {}, "abortable": true, "reboot_requested": false},
                "node": node, "ports": [], "clean_version": null}),
        )
        .await;
    assert_eq!(r["clean_result"], config);
    let info = json!({"id": "raid-bios-image", "urls": [image_url], "disk_format": "raw",
        "os_hash_algo": "sha256", "os_hash_value": sha256_hex(&image)});
    let msg = vm
        .ok(
            &http,
            "standby.prepare_image",
            json!({"image_info": info, "configdrive": null}),
        )
        .await;
    assert!(
        msg["result"]
            .as_str()
            .unwrap()
            .contains("written to device /dev/md0"),
        "{msg}"
    );
    let uuids = vm.ok(&http, "standby.get_partition_uuids", json!({})).await;
    assert_eq!(
        uuids["root uuid"], "0x1e2f3a4b",
        "the image's disk id: {uuids}"
    );
    // Ironic's configure_local_boot for software RAID: install_bootloader in
    // BIOS mode with the image's rootfs_uuid, else root_uuid_or_disk_id
    let root_uuid = if rootfs_uuid {
        json!(ROOTFS_UUID)
    } else {
        uuids["root uuid"].clone()
    };
    let r = vm
        .ok(
            &http,
            "image.install_bootloader",
            json!({"root_uuid": root_uuid, "efi_system_part_uuid": null,
                "prep_boot_part_uuid": null, "target_boot_mode": "bios"}),
        )
        .await;
    let msg = r["result"].as_str().unwrap();
    let place = if disk_label == "gpt" {
        "new BIOS boot partition 2"
    } else {
        "the gap after the MBR"
    };
    assert!(
        msg.contains(&format!(
            "on every holder disk of the software RAID /dev/md0: /dev/vda ({place}), /dev/vdb ({place})"
        )),
        "{msg}"
    );
    assert!(msg.contains(ROOTFS_UUID), "{msg}");
    vm.power_off(&http).await;

    let boot_img = std::fs::read("/usr/lib/grub/i386-pc/boot.img").unwrap();
    for d in &disks {
        let parts = partitions(d);
        let f = std::fs::File::open(d).unwrap();
        let mut mbr = [0u8; 512];
        f.read_exact_at(&mut mbr, 0).unwrap();
        // GRUB's boot code (up to its patched sector/drive fields) in the MBR
        assert_eq!(mbr[..0x5a], boot_img[..0x5a], "{}", d.display());
        assert_eq!(&mbr[510..], &[0x55, 0xAA]);
        let core_at = u64::from_le_bytes(mbr[0x5c..0x64].try_into().unwrap());
        if disk_label == "gpt" {
            // the RAID partition at 8 MiB, the BIOS boot partition in the room before it
            assert_eq!(parts.len(), 2, "{parts:?}");
            assert_eq!(parts[0].0, 8 * MIB, "{parts:?}");
            assert_eq!(parts[0].2, "A19D880F-05FC-4D3B-A006-743F0F84911E");
            assert_eq!((parts[1].0, parts[1].1), (MIB, 2 * MIB), "{parts:?}");
            assert_eq!(parts[1].2, "21686148-6E55-6E1F-744E-656564454649");
            assert_eq!(core_at, 2048, "the core image in the BIOS boot partition");
        } else {
            assert_eq!(parts.len(), 1, "{parts:?}");
            assert_eq!(parts[0].0, MIB, "{parts:?}");
            assert_eq!(parts[0].2, "fd", "Linux RAID autodetect");
            assert_eq!(core_at, 1, "the core image right after the MBR");
        }
        let (data_offset, name) = md_superblock(&f, parts[0].0 + 4096)
            .unwrap_or_else(|| panic!("no md 1.2 superblock on {}", d.display()));
        assert!(name.ends_with("root"), "{name}");
        let mut got = vec![0u8; image.len()];
        f.read_exact_at(&mut got, parts[0].0 + data_offset).unwrap();
        assert!(
            got[MIB as usize..] == image[MIB as usize..],
            "{} mirrors the image",
            d.display()
        );
    }
    // SeaBIOS boots GRUB from either disk: GRUB assembles the (degraded) array
    // and runs the image's grub.cfg
    boot_disks(&disks, &dir, BIOS_MARKER, false);
    boot_disks(&disks[..1], &dir, BIOS_MARKER, false);
    boot_disks(&disks[1..], &dir, BIOS_MARKER, false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn software_raid_bios_msdos_in_a_vm() {
    bios_raid("msdos", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn software_raid_bios_gpt_in_a_vm() {
    bios_raid("gpt", false).await;
}
