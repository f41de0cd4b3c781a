//! Images read back by tools nobody here wrote: `isoinfo` (genisoimage),
//! `blkid` (util-linux), `fsck.vfat` (dosfstools) and `mtools`. A missing tool
//! fails the test with the package to install.

use std::path::Path;
use std::process::Command;

use ironic_iso::{IsoBuilder, fat_image};

fn run(cmd: &str, args: &[&str], package: &str) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| {
        panic!("{cmd} is needed by this test ({e}); install it: apt-get install {package}")
    });
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn isoinfo(iso: &Path, args: &[&str]) -> String {
    let mut a = vec!["-i", iso.to_str().unwrap()];
    a.extend_from_slice(args);
    run("isoinfo", &a, "genisoimage")
}

#[test]
fn a_config_drive_reads_back_with_its_label_and_long_names() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("user_data");
    std::fs::write(&disk, "#cloud-config\nhostname: n1\n").unwrap();
    let mut iso = IsoBuilder::new("config-2").unwrap();
    iso.publisher("ironic-rs").timestamp(1_796_600_000);
    let meta = br#"{"uuid":"0f2a","hostname":"n1","public_keys":{"k":"ssh-ed25519 AAAA"}}"#;
    iso.add_file("openstack/latest/meta_data.json", meta.to_vec())
        .unwrap();
    iso.add_file("openstack/latest/network_data.json", b"{}".to_vec())
        .unwrap();
    iso.add_path("openstack/latest/user_data", &disk).unwrap();
    iso.add_file("openstack/content/0000", vec![7u8; 5000])
        .unwrap();
    iso.add_dir("ec2/latest").unwrap();
    // Enough files that directories span several sectors, names over 30 and
    // near 64 characters, names equal but for case.
    for i in 0..120 {
        iso.add_file(
            &format!("many/a-rather-long-file-name-number-{i:03}-of-the-set.txt"),
            format!("file {i}\n").into_bytes(),
        )
        .unwrap();
    }
    iso.add_file("many/Case", b"upper".to_vec()).unwrap();
    iso.add_file("many/case", b"lower".to_vec()).unwrap();
    let path = dir.path().join("cd.iso");
    let size = iso.write_file(&path).unwrap();
    assert_eq!(size, std::fs::metadata(&path).unwrap().len());

    let blkid = run(
        "blkid",
        &["-p", "-o", "export", path.to_str().unwrap()],
        "util-linux",
    );
    assert!(blkid.contains("TYPE=iso9660"), "{blkid}");
    assert!(blkid.contains("LABEL=config-2"), "{blkid}");

    let info = isoinfo(&path, &["-d"]);
    assert!(info.contains("Volume id: config-2"), "{info}");
    assert!(info.contains("Joliet with UCS level 3 found"), "{info}");
    assert!(info.contains("Publisher id: ironic-rs"), "{info}");
    assert!(
        info.contains(&format!("Volume size is: {}", size / 2048)),
        "{info}"
    );

    let list = isoinfo(&path, &["-J", "-f"]);
    for p in [
        "/openstack/latest/meta_data.json",
        "/openstack/latest/network_data.json",
        "/openstack/latest/user_data",
        "/openstack/content/0000",
        "/ec2/latest",
        "/many/a-rather-long-file-name-number-119-of-the-set.txt",
        "/many/Case",
        "/many/case",
    ] {
        assert!(list.lines().any(|l| l == p), "{p} missing from:\n{list}");
    }
    assert_eq!(
        list.lines().filter(|l| l.starts_with("/many/")).count(),
        122
    );
    // Rock Ridge (what Linux and `isoinfo -R` read first): names and modes.
    let rr = isoinfo(&path, &["-R", "-l"]);
    assert!(rr.contains("meta_data.json"), "{rr}");
    assert!(
        rr.contains("-r--r--r--") && rr.contains("dr-xr-xr-x"),
        "{rr}"
    );
    assert_eq!(
        isoinfo(&path, &["-R", "-x", "/openstack/latest/meta_data.json"]).as_bytes(),
        meta
    );
    let get = |p: &str| isoinfo(&path, &["-J", "-x", p]);
    assert_eq!(get("/openstack/latest/meta_data.json").as_bytes(), meta);
    assert_eq!(
        get("/openstack/latest/user_data"),
        "#cloud-config\nhostname: n1\n"
    );
    assert_eq!(get("/openstack/content/0000").as_bytes(), vec![7u8; 5000]);
    assert_eq!(
        get("/many/a-rather-long-file-name-number-077-of-the-set.txt"),
        "file 77\n"
    );
    assert_eq!(get("/many/Case"), "upper");
    assert_eq!(get("/many/case"), "lower");

    // The primary volume (readers without Joliet): relaxed names, all distinct.
    let primary = isoinfo(&path, &["-f"]);
    assert!(
        primary
            .lines()
            .any(|l| l == "/openstack/latest/meta_data.json;1"),
        "{primary}"
    );
    let many: Vec<&str> = primary
        .lines()
        .filter(|l| l.starts_with("/many/"))
        .collect();
    let mut unique = many.clone();
    unique.sort_by_key(|s| s.to_ascii_lowercase());
    unique.dedup_by_key(|s| s.to_ascii_lowercase());
    assert_eq!(many.len(), 122);
    assert_eq!(unique.len(), 122, "{many:?}");
}

#[test]
fn a_boot_image_has_el_torito_entries_for_bios_and_uefi_and_a_clean_esp() {
    let dir = tempfile::tempdir().unwrap();
    let loader = vec![0x90u8; 30000];
    let efi_app = b"MZ not really an EFI application".repeat(100);
    let esp = fat_image("ESP", &[("EFI/BOOT/BOOTX64.EFI", &efi_app)]).unwrap();
    let esp_path = dir.path().join("esp.img");
    std::fs::write(&esp_path, &esp).unwrap();
    let fsck = run(
        "fsck.vfat",
        &["-n", esp_path.to_str().unwrap()],
        "dosfstools",
    );
    assert!(!fsck.contains("differ"), "{fsck}");
    let mdir = run(
        "mdir",
        &["-i", esp_path.to_str().unwrap(), "::/EFI/BOOT"],
        "mtools",
    );
    assert!(mdir.contains("BOOTX64") && mdir.contains("EFI"), "{mdir}");
    let back = Command::new("mtype")
        .args(["-i", esp_path.to_str().unwrap(), "::/EFI/BOOT/BOOTX64.EFI"])
        .output()
        .unwrap();
    assert_eq!(back.stdout, efi_app);

    let mut iso = IsoBuilder::new("IRONIC_AGENT").unwrap();
    iso.add_file("boot/grub/i386-pc/eltorito.img", loader)
        .unwrap();
    iso.add_file("boot/efi.img", esp).unwrap();
    iso.add_file("vmlinuz", vec![1u8; 100_000]).unwrap();
    iso.bios_boot("boot/grub/i386-pc/eltorito.img", 4, true)
        .uefi_boot("boot/efi.img");
    let path = dir.path().join("boot.iso");
    iso.write_file(&path).unwrap();
    let info = isoinfo(&path, &["-d"]);
    assert!(info.contains("El Torito VD version 1 found"), "{info}");
    assert!(info.contains("No Emulation Boot"), "{info}");
    assert!(info.contains("Nsect 4"), "{info}");
    let blkid = run(
        "blkid",
        &["-p", "-o", "export", path.to_str().unwrap()],
        "util-linux",
    );
    assert!(blkid.contains("LABEL=IRONIC_AGENT"), "{blkid}");
}
