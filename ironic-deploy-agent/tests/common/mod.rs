//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod rack;
pub mod vm;

use rand::{Rng, SeedableRng};
use sha2::Digest;

/// Run a tool the tests need; fail with an install hint when it is missing.
pub fn tool(name: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!("{name} is needed by this test ({e}); install it: apt-get install qemu-utils genisoimage")
    });
    assert!(
        out.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A raw disk image with random data, zero runs and a GPT, `mib` MiB.
pub fn make_raw(path: &Path, mib: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut data = vec![0u8; mib << 20];
    // random 64 KiB blocks, about half of them, some partial
    for blk in data.chunks_mut(64 << 10) {
        if rng.random_bool(0.5) {
            let n = rng.random_range(1..=blk.len());
            rng.fill(&mut blk[..n]);
        }
    }
    std::fs::write(path, &data).unwrap();
    data
}

/// sha256 hex of a file's bytes.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// A sparse file of `size` bytes filled with 0xEE in its first and last MiB (old data).
pub fn make_disk(path: &Path, size: u64) -> PathBuf {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    use std::os::unix::fs::FileExt;
    let junk = vec![0xEEu8; 1 << 20];
    f.write_all_at(&junk, 0).unwrap();
    f.write_all_at(&junk, size - (1 << 20)).unwrap();
    path.to_owned()
}

/// A qcow2 v3 file (4 KiB clusters) whose data clusters come first in shuffled
/// order, then the L2 tables, then the L1 table: every table comes after what it maps.
pub fn make_qcow2_out_of_order(path: &Path, guest: &[u8]) {
    const CB: u32 = 12;
    const CS: usize = 1 << CB;
    let size = guest.len() as u64;
    assert_eq!(guest.len() % CS, 0);
    let nclusters = guest.len() / CS;
    let per_l2 = CS / 8;
    let n_l2 = nclusters.div_ceil(per_l2);
    let data_idx: Vec<usize> = (0..nclusters)
        .filter(|&g| guest[g * CS..(g + 1) * CS].iter().any(|&b| b != 0))
        .collect();
    // host layout: 0 header, 1 reftable, 2..2+nrb refblocks, data..., L2s..., L1
    let total_guess = 3 + data_idx.len() + n_l2 + 1;
    let nrb = total_guess.div_ceil(CS / 2) + 1;
    let mut next = 2 + nrb;
    let mut shuffled = data_idx.clone();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for i in (1..shuffled.len()).rev() {
        let j = rng.random_range(0..=i);
        shuffled.swap(i, j);
    }
    let mut host_of = std::collections::HashMap::new();
    for &g in &shuffled {
        host_of.insert(g, next);
        next += 1;
    }
    let l2_first = next;
    next += n_l2;
    let l1_at = next;
    next += 1;
    let total = next;
    let mut f = vec![0u8; total * CS];
    let put64 = |f: &mut Vec<u8>, o: usize, v: u64| f[o..o + 8].copy_from_slice(&v.to_be_bytes());
    let put32 = |f: &mut Vec<u8>, o: usize, v: u32| f[o..o + 4].copy_from_slice(&v.to_be_bytes());
    f[0..4].copy_from_slice(b"QFI\xfb");
    put32(&mut f, 4, 3);
    put32(&mut f, 20, CB);
    put64(&mut f, 24, size);
    put32(&mut f, 36, n_l2 as u32);
    put64(&mut f, 40, (l1_at * CS) as u64);
    put64(&mut f, 48, CS as u64);
    put32(&mut f, 56, 1);
    put32(&mut f, 96, 4);
    put32(&mut f, 100, 104);
    for (g, &h) in &host_of {
        f[h * CS..(h + 1) * CS].copy_from_slice(&guest[g * CS..(g + 1) * CS]);
        let l2 = l2_first + g / per_l2;
        put64(
            &mut f,
            l2 * CS + (g % per_l2) * 8,
            (h * CS) as u64 | 1 << 63,
        );
    }
    for i in 0..n_l2 {
        put64(
            &mut f,
            l1_at * CS + i * 8,
            ((l2_first + i) * CS) as u64 | 1 << 63,
        );
    }
    for r in 0..nrb {
        put64(&mut f, CS + r * 8, ((2 + r) * CS) as u64);
    }
    for c in 0..total {
        let o = 2 * CS + c * 2;
        f[o..o + 2].copy_from_slice(&1u16.to_be_bytes());
    }
    std::fs::write(path, f).unwrap();
}

/// A QEMU process, killed and reaped when dropped.
struct QemuGuard(std::process::Child);

impl Drop for QemuGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Boot `disk` in QEMU (BIOS or OVMF) and wait until the serial console shows
/// `marker` (the image's grub.cfg echoes it): the boot loader really boots.
pub fn boot_until(disk: &std::path::Path, uefi: bool, marker: &str) -> String {
    boot_until_with(disk, uefi, marker, 512)
}

/// [`boot_until`] with the disk's logical sector size: 4096 presents it as a
/// 4Kn virtio disk.
pub fn boot_until_with(disk: &std::path::Path, uefi: bool, marker: &str, sector: u32) -> String {
    use std::io::Read;
    let dir = disk.parent().unwrap();
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-accel",
        "tcg",
        "-m",
        "256",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-nodefaults",
    ]);
    if uefi {
        let vars = dir.join("OVMF_VARS.fd");
        std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars)
            .expect("OVMF firmware is needed: apt-get install ovmf");
        cmd.args([
            "-drive",
            "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
        ])
        .arg("-drive")
        .arg(format!("if=pflash,format=raw,file={}", vars.display()));
    }
    if sector == 512 {
        cmd.arg("-drive")
            .arg(format!("file={},format=raw,if=ide", disk.display()));
    } else {
        cmd.arg("-drive")
            .arg(format!("file={},format=raw,if=none,id=d0", disk.display()))
            .arg("-device")
            .arg(format!(
                "virtio-blk-pci,drive=d0,logical_block_size={sector},physical_block_size={sector}"
            ));
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = QemuGuard(
        cmd.spawn()
            .expect("qemu-system-x86_64 is needed: apt-get install qemu-system-x86 ovmf"),
    );
    let mut out = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while std::time::Instant::now() < deadline {
        if let Ok(b) = rx.recv_timeout(std::time::Duration::from_secs(1)) {
            seen.extend_from_slice(&b);
        }
        let text = String::from_utf8_lossy(&seen).into_owned();
        if text.contains(marker) {
            return text;
        }
    }
    drop(child);
    panic!(
        "the disk did not boot to {marker:?} within 180 s; console:\n{}",
        String::from_utf8_lossy(&seen)
    );
}

/// A grub.cfg that prints `marker` on the serial console and powers off.
pub fn grub_cfg(marker: &str) -> Vec<u8> {
    format!(
        "serial --unit=0 --speed=115200\nterminal_output serial\necho {marker}\nsleep 1\nhalt\n"
    )
    .into_bytes()
}

/// A 16 MiB ext4 filesystem image with `files` (made by mke2fs, not by us).
pub fn ext4_image(
    dir: &std::path::Path,
    uuid: &str,
    files: &[(&str, &[u8])],
) -> std::path::PathBuf {
    ext4_image_with(dir, uuid, files, &[])
}

/// [`ext4_image`] with more `mkfs.ext4` options.
pub fn ext4_image_with(
    dir: &std::path::Path,
    uuid: &str,
    files: &[(&str, &[u8])],
    extra: &[&str],
) -> std::path::PathBuf {
    let tree = dir.join(format!("tree-{uuid}"));
    for (p, data) in files {
        let path = tree.join(p.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    std::fs::create_dir_all(&tree).unwrap();
    let img = dir.join(format!("root-{uuid}.img"));
    let _ = std::fs::remove_file(&img);
    Command::new("truncate")
        .args(["-s", "16M"])
        .arg(&img)
        .status()
        .unwrap();
    tool(
        "mkfs.ext4",
        &["-q", "-F", "-U", uuid, "-d", tree.to_str().unwrap()]
            .into_iter()
            .chain(extra.iter().copied())
            .chain([img.to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    img
}
