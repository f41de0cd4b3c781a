//! Randomness that never waits for the kernel's random pool.
//!
//! In a virtual machine without a hardware RNG (QEMU TCG without RDRAND, no
//! virtio-rng), the kernel's CRNG may stay uninitialised for minutes, and a plain
//! `getrandom(2)` (what `rand::rng()` and `Uuid::new_v4()` use) blocks until it is.
//! The agent's own uses of randomness are not secrets: heartbeat jitter and the
//! unique ids of partition tables and partitions. They take bytes from
//! `getrandom(GRND_INSECURE)` (Linux 5.6+: never blocks), else
//! `GRND_NONBLOCK`, else a mix of the clock, the process id and a counter, so
//! the agent comes up and deploys whatever the pool's state. TLS (an `https`
//! `ipa-api-url`, `ipa-enable-auto-tls`) does need the pool: [`crng_ready`] lets
//! the agent say so in its log instead of hanging silently.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::rand::{GetRandomFlags, getrandom};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Fill `buf` without blocking; the bytes are unpredictable enough for ids and
/// jitter, not for keys.
pub fn fill(buf: &mut [u8]) {
    for flags in [GetRandomFlags::INSECURE, GetRandomFlags::NONBLOCK] {
        if let Ok(n) = getrandom(&mut *buf, flags)
            && n == buf.len()
        {
            return;
        }
    }
    // splitmix64 over the clock, the pid and a counter.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let mut x = now
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for chunk in buf.chunks_mut(8) {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

/// A random (version 4) UUID, without waiting for the random pool.
pub fn uuid_v4() -> uuid::Uuid {
    let mut b = [0u8; 16];
    fill(&mut b);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

/// A random `u32` (volume serials, disk signatures), without waiting for the random pool.
pub fn u32() -> u32 {
    let mut b = [0u8; 4];
    fill(&mut b);
    u32::from_le_bytes(b)
}

/// A number uniformly spread over `[lo, hi)`, without waiting for the random pool.
pub fn uniform(lo: f64, hi: f64) -> f64 {
    let mut b = [0u8; 8];
    fill(&mut b);
    // 53 random bits into [0, 1).
    let unit = (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64;
    lo + (hi - lo) * unit
}

/// Whether the kernel's CRNG is initialised (a non-blocking read succeeds).
pub fn crng_ready() -> bool {
    let mut b = [0u8; 1];
    matches!(getrandom(&mut b[..], GetRandomFlags::NONBLOCK), Ok(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4_and_distinct() {
        let a = uuid_v4();
        let b = uuid_v4();
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 4);
        for _ in 0..1000 {
            let v = uniform(0.3, 0.6);
            assert!((0.3..0.6).contains(&v), "{v}");
        }
    }
}
