//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod rack;

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
